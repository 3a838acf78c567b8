"""probe: what do deep networks like to hear?

Put a waveform autoencoder in front of a frozen audio classifier, finetune only the
autoencoder on the classifier's loss, and compare what it keeps with what it drops
(after Palacio et al., CVPR 2018).
"""
__version__ = "0.1.0"
