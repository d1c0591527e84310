"""Production provisioning: station recipes, per-device identity, and a record for every unit."""
