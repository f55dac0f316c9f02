"""The shared kernel every back-office service stands on.

Plain-Python modules (errors, context, access, paging, filtering, names, money) may be
imported by domain code; the others (db, grpc_*, server, ...) are adapters.
"""
