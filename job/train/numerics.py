"""Numbers every style must agree on, kept framework-free so each style's folder reads
them without importing another style (and so without its framework)."""

# Keras' BatchNormalization epsilon: the TF and torch nets normalise with the same one.
BN_EPSILON = 1e-3

# keras.optimizers.LossScaleOptimizer's defaults under mixed_float16: the scale starts at
# 2**15 and doubles after this many finite steps in a row, in every style alike.
LOSS_SCALE_INITIAL = 2.0 ** 15
LOSS_SCALE_GROWTH_STEPS = 2000
