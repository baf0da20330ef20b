from proxyproof.cli import main

main()
