from betrokken.app.launch import main

main()
