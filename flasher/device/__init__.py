"""A board on a port: port names and errors, connect strategies, esptool as a library."""
