from nodekd_cli.app import main

main()
