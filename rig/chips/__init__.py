"""Silicon facts as the vendors' reference manuals give them: addresses and cores of the parts rig
supports, the one place the build, the drivers, the provisioning recipes and the virtual lab read
(rig.sim models these parts; the layers that drive real boards must not import it)."""
