"""OTA delivery and campaigns: the update server, link profiles, faults, power-cut triggers."""
