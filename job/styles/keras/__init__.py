"""The keras style: its net builder, loop, optimizer and input feeding; the only folder that imports its framework."""
