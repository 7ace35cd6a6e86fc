from betrokken.launch import main

main()
