from betrokken.cli import main

main()
