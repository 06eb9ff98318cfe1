"""Training losses of the SPADE recipe: hinge GAN, feature matching, KL, VGG perceptual."""
