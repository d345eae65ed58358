"""`flchain`, the command line: argument parsing and printing only, calling the packages below it."""
