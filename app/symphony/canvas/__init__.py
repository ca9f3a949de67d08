"""VIEW of the Harmony Board: the scene, the view and the items (nodes, ports, links, notes)."""
