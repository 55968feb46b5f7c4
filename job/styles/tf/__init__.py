"""The plain TensorFlow style: its net builder, loop, optimizer, input feeding and device setup;
the only folder that imports its framework."""
