from nexus.kernel.cli import main

main()
