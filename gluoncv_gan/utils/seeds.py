"""The salts of the package's random streams (imports nothing).

Each seeded stream draws from ``np.random.RandomState([seed, ..., SALT])``: the user's seed
plus a salt of its own, so that streams seeded with the same number still differ. The values
are part of what a seed means (a resumed run repeats an uninterrupted one, a seed names the
same real subset in every command); changing one changes results. The shuffle of an epoch
(``data.loader.epoch_permutation``) is seeded by ``[seed, epoch]`` and has no salt.
"""

__all__ = ['LATENT_BATCH_SALT', 'BN_RECALIBRATION_SALT', 'FIXED_NOISE_SALT', 'REAL_SUBSET_SALT',
           'EVALUATION_LATENT_SALT', 'REAL_FLOOR_SALT', 'FLIP_SALT', 'AUGMENT_SALT']

# the latents of each training iteration: [seed, iteration, salt] (estimator.latent_batch)
LATENT_BATCH_SALT = 0x5A
# the latents of the EMA generator's BatchNorm recalibration (estimator.recalibrate_batchnorm)
BN_RECALIBRATION_SALT = 0xBC
# the fixed latent batch of the sample grids (pipeline.build.fixed_noise_for)
FIXED_NOISE_SALT = 0xF1
# the order of the real images that real_subset and split_real draw from (pipeline.evaluation)
REAL_SUBSET_SALT = 0xE7
# the latents of training's evaluations, the same at every epoch (pipeline.evaluation)
EVALUATION_LATENT_SALT = 0xEA
# the other real images that evaluate --real-floor measures in place of samples (pipeline.evaluation)
REAL_FLOOR_SALT = 0xF0

# which images an epoch mirrors: [seed, epoch, salt] (data.loader.epoch_flips)
FLIP_SALT = 0xF7
# the discriminator's input augmentations: [seed, iteration, salt, part] (estimator.augment)
AUGMENT_SALT = 0xA6
