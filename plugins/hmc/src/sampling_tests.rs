//! Statistical tests of the hmc kernel.
