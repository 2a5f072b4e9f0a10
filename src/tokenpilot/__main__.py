from tokenpilot.cli import main

main()
