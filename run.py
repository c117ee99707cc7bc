#!/usr/bin/env python3
"""Serve every provider on 127.0.0.1:8080: ``python run.py --help``."""
import sys

from simulator.cli import main

if __name__ == "__main__":
    sys.exit(main())
