"""FID, KID and precision/recall of two sets of Inception features.

The features come from :mod:`gluoncv_gan.metrics.inception` (the reference network of FID);
these functions only do the statistics, in numpy and scipy, as StyleGAN2-ADA's metrics define
them:

* :func:`frechet_distance`: FID (Heusel et al. 2017), the Fréchet distance between the Gaussians
  fitted to the two sets.
* :func:`kernel_inception_distance`: KID (Bińkowski et al. 2018), the unbiased estimate of the
  squared MMD with the cubic polynomial kernel, averaged over random subsets (mean and standard
  deviation).
* :func:`precision_recall`: the k-nearest-neighbour manifolds of Kynkäänniemi et al. 2019:
  precision is the share of generated samples inside the real manifold, recall the share of real
  samples inside the generated one.
"""
import numpy as np
import scipy.linalg

__all__ = ['feature_statistics', 'frechet_distance', 'fid_method', 'fid_from_features',
           'inception_scores',
           'kernel_inception_distance', 'precision_recall']


def feature_statistics(features):
    """(mean, covariance) in float64 of (N, D) ``features``, the Gaussian FID fits."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError('FID needs at least 2 feature vectors, got shape %s'
                         % (features.shape,))
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu_real, sigma_real, mu_fake, sigma_fake):
    """FID between the real Gaussian and the generated one.

    ``|mu_fake - mu_real|^2 + Tr(sigma_fake + sigma_real - 2 (sigma_fake sigma_real)^(1/2))``,
    with the matrix square root of scipy, the product taken in the order the reference
    implementations use, and its imaginary rounding noise dropped.

    With fewer images than feature dimensions (2048) the covariances are singular, and for a
    few hundred images scipy's square root fails (values like 1e90). The trace of the root is
    then taken from the eigenvalues of the product instead (they are real and non-negative:
    the product is similar to a symmetric positive semi-definite matrix), which is the same
    quantity; :func:`fid_method` says which way a value was computed.
    """
    return _frechet(mu_real, sigma_real, mu_fake, sigma_fake)[0]


def fid_method(mu_real, sigma_real, mu_fake, sigma_fake):
    """'sqrtm' when :func:`frechet_distance` used scipy's square root, else 'eigenvalues'."""
    return _frechet(mu_real, sigma_real, mu_fake, sigma_fake)[1]


def _frechet(mu_real, sigma_real, mu_fake, sigma_fake):
    diff = np.square(mu_fake - mu_real).sum()
    product = np.dot(sigma_fake, sigma_real)
    traces = np.trace(sigma_fake) + np.trace(sigma_real)
    root, error = scipy.linalg.sqrtm(product, disp=False)
    value = np.real(diff + traces - 2 * np.trace(root))
    # the error estimate is |root^2 - product| / |product|: far from 0 when the root failed
    if np.isfinite(value) and np.isfinite(error) and error < 1e-3:
        return float(value), 'sqrtm'
    roots = np.sqrt(np.clip(np.linalg.eigvals(product).real, 0, None))
    return float(diff + traces - 2 * roots.sum()), 'eigenvalues'


def fid_from_features(real_features, fake_features):
    """FID of two (N, D) feature arrays."""
    return frechet_distance(*feature_statistics(real_features),
                            *feature_statistics(fake_features))


def _polynomial_kernel(x, y):
    return (x @ y.T / x.shape[1] + 1) ** 3


def kernel_inception_distance(real_features, fake_features, num_subsets=100,
                              max_subset_size=1000, seed=0):
    """KID: mean and standard deviation of the unbiased MMD^2 over random subsets.

    Parameters
    ----------
    real_features, fake_features : numpy.ndarray
        (N, D) features.
    num_subsets : int
        Subset pairs drawn.
    max_subset_size : int
        Images in each subset (fewer when a set is smaller).
    seed : int
        Seed of the subset draws.

    Returns
    -------
    dict
        ``kid`` (mean), ``kid_std`` and ``kid_subset_size``.
    """
    real = np.asarray(real_features, np.float64)
    fake = np.asarray(fake_features, np.float64)
    size = min(len(real), len(fake), max_subset_size)
    if size < 2:
        raise ValueError('KID needs at least 2 images in each set')
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(num_subsets):
        x = fake[rng.choice(len(fake), size, replace=False)]
        y = real[rng.choice(len(real), size, replace=False)]
        within = _polynomial_kernel(x, x) + _polynomial_kernel(y, y)
        between = _polynomial_kernel(x, y)
        # the diagonal (each sample with itself) is left out: that is what makes it unbiased
        values.append((within.sum() - np.trace(within)) / (size * (size - 1))
                      - 2 * between.mean())
    return {'kid': float(np.mean(values)), 'kid_std': float(np.std(values)),
            'kid_subset_size': int(size)}


def _squared_norms(x):
    return np.einsum('ij,ij->i', x, x)


def _pairwise_sq_distances(a, b, b_norms):
    d = _squared_norms(a)[:, None] + b_norms[None, :] - 2 * (a @ b.T)
    return np.maximum(d, 0)


def _knn_radii(features, k, batch_size):
    """Squared distance of each vector to its k-th nearest other vector of the same set."""
    norms = _squared_norms(features)
    radii = np.empty(len(features))
    for begin in range(0, len(features), batch_size):
        d = _pairwise_sq_distances(features[begin:begin + batch_size], features, norms)
        # column k: index 0 is the vector itself (distance 0)
        radii[begin:begin + len(d)] = np.partition(d, k, axis=1)[:, k]
    return radii


def _inside_manifold(points, centers, radii, batch_size):
    """Per point: whether it lies within the radius of at least one center."""
    norms = _squared_norms(centers)
    inside = np.empty(len(points), bool)
    for begin in range(0, len(points), batch_size):
        d = _pairwise_sq_distances(points[begin:begin + batch_size], centers, norms)
        inside[begin:begin + len(d)] = (d <= radii[None, :]).any(axis=1)
    return inside


def precision_recall(real_features, fake_features, k=3, batch_size=1000):
    """Improved precision and recall (Kynkäänniemi et al. 2019) with k-NN manifolds.

    Returns
    -------
    dict
        ``precision``: share of generated samples within the k-NN radius of some real sample;
        ``recall``: share of real samples within the k-NN radius of some generated sample;
        ``pr_k``.
    """
    real = np.asarray(real_features, np.float32)
    fake = np.asarray(fake_features, np.float32)
    if min(len(real), len(fake)) <= k:
        raise ValueError('precision/recall with k=%d needs more than %d images in each set'
                         % (k, k))
    real_radii = _knn_radii(real, k, batch_size)
    fake_radii = _knn_radii(fake, k, batch_size)
    precision = _inside_manifold(fake, real, real_radii, batch_size).mean()
    recall = _inside_manifold(real, fake, fake_radii, batch_size).mean()
    return {'precision': float(precision), 'recall': float(recall), 'pr_k': int(k)}


# the sample counts at which FID is also reported, when the generated set is at least as large:
# FID is biased upwards by fewer samples, so values are comparable only at one count
FID_COUNTS = (2000, 5000, 10000, 50000)


def inception_scores(real_features, fake_features, metrics=('fid', 'kid', 'pr'), seed=0):
    """FID, KID and precision/recall of generated features against real ones; a dict.

    ``fid_by_count`` gives FID of the first 2k, 5k, 10k and 50k generated samples (those the set
    has), to compare with values measured on fewer samples.
    """
    out = {'inception_counts': {'fake': int(len(fake_features)),
                                'real': int(len(real_features))}}
    if 'fid' in metrics:
        mu_real, sigma_real = feature_statistics(real_features)
        out['fid'], out['fid_method'] = _frechet(mu_real, sigma_real,
                                                 *feature_statistics(fake_features))
        out['fid_by_count'] = {
            str(n): frechet_distance(mu_real, sigma_real, *feature_statistics(fake_features[:n]))
            for n in FID_COUNTS if n < len(fake_features)}
    if 'kid' in metrics:
        out.update(kernel_inception_distance(real_features, fake_features, seed=seed))
    if 'pr' in metrics:
        out.update(precision_recall(real_features, fake_features))
    return out
