"""Virtual boards and the rack daemon. Reached only through sockets, ptys and files, like real boards."""
