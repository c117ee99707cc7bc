import os
import sys

# the providers' own signing clients, shared with their test folders
_TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for folder in ("paysera", "bank131", "gr4vy"):
    path = os.path.join(_TESTS, folder)
    if path not in sys.path:
        sys.path.append(path)
