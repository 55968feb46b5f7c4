"""The machine underneath: devices, precision and strategy; stop signals; atomic files."""
