//! RealNVP affine coupling layers.
