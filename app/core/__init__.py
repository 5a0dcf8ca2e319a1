"""The shared core at the bottom of every layer: ids, the clock, lock info, domain errors, the RBAC rules, state
intake and chunk streams. Nothing here imports the app, Flask or the database; every other package may import it."""
