"""What a skops model file may contain without ``trusted=``: explicit names, never a prefix.

skops itself trusts scikit-learn's public estimators, its loss and binning internals,
numpy arrays, scalars, ufuncs and scipy's sparse matrices. A fitted estimator also holds a
few more objects: tree structures, scorers, splitters, kernels. Those are listed here one
class at a time. A name in a skops file is looked up with an import and, for most loaders,
*called* (a reduce node calls it with arguments from the file), so a package prefix would
let a file name any function of that package (``numpy.testing._private.utils.runstring``
runs a string). Functions are never called on load: a few that scikit-learn stores as the
default value of a parameter (``SelectKBest(score_func=f_classif)``) are allowed only as
values, where skops's ``FunctionNode`` returns them without calling them.
"""

from __future__ import annotations

__all__ = ["TRUSTED_CLASSES", "TRUSTED_FUNCTIONS"]

_SPLITTERS = (
    "GroupKFold",
    "GroupShuffleSplit",
    "KFold",
    "LeaveOneGroupOut",
    "LeaveOneOut",
    "LeavePGroupsOut",
    "LeavePOut",
    "PredefinedSplit",
    "RepeatedKFold",
    "RepeatedStratifiedKFold",
    "ShuffleSplit",
    "StratifiedGroupKFold",
    "StratifiedKFold",
    "StratifiedShuffleSplit",
    "TimeSeriesSplit",
    "_CVIterableWrapper",
)
_KERNELS = (
    "CompoundKernel",
    "ConstantKernel",
    "DotProduct",
    "ExpSineSquared",
    "Exponentiation",
    "Hyperparameter",
    "Matern",
    "PairwiseKernel",
    "Product",
    "RBF",
    "RationalQuadratic",
    "Sum",
    "WhiteKernel",
)
_DISTANCES = (
    "BrayCurtisDistance",
    "CanberraDistance",
    "ChebyshevDistance",
    "DiceDistance",
    "EuclideanDistance",
    "HammingDistance",
    "HaversineDistance",
    "JaccardDistance",
    "MahalanobisDistance",
    "ManhattanDistance",
    "MinkowskiDistance",
    "RogersTanimotoDistance",
    "RussellRaoDistance",
    "SEuclideanDistance",
    "SokalMichenerDistance",
    "SokalSneathDistance",
)

TRUSTED_CLASSES: frozenset[str] = frozenset(
    {
        # numpy and scipy values a fitted estimator holds
        "numpy.dtype",
        "numpy.ma.core.MaskedArray",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "scipy.interpolate._bsplines.BSpline",
        "functools.partial",
        "collections.OrderedDict",
        # scikit-learn's fitted internals (trees, predictors, search and calibration parts)
        "sklearn.tree._tree.Tree",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.utils._bunch.Bunch",
        "sklearn.metrics._scorer._PassthroughScorer",
        "sklearn.metrics._scorer._Scorer",
        "sklearn.metrics._scorer._MultimetricScorer",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.neighbors._ball_tree.BallTree",
        "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
        "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
        "sklearn.gaussian_process._gpc._BinaryGaussianProcessClassifierLaplace",
        "sklearn.cluster._bisect_k_means._BisectingTree",
        "sklearn._loss.loss.HalfTweedieLoss",
        "sklearn._loss.loss.HalfTweedieLossIdentity",
        *(f"sklearn.model_selection._split.{name}" for name in _SPLITTERS),
        *(f"sklearn.gaussian_process.kernels.{name}" for name in _KERNELS),
        *(
            f"sklearn.metrics._dist_metrics.{name}{bits}"
            for name in _DISTANCES
            for bits in ("", "32", "64")
        ),
    }
)

# Pure functions scikit-learn stores as parameter defaults or inside its own fitted
# estimators; trusted only as values (never called while a file loads).
TRUSTED_FUNCTIONS: frozenset[str] = frozenset(
    {
        "numpy.mean",
        "numpy.median",
        "scipy._lib.array_api_compat.numpy._aliases.asarray",
        "sklearn.utils.validation.check_array",
        "sklearn.feature_selection._univariate_selection.chi2",
        "sklearn.feature_selection._univariate_selection.f_classif",
        "sklearn.feature_selection._univariate_selection.f_regression",
        "sklearn.feature_selection._univariate_selection.r_regression",
        "sklearn.feature_selection._mutual_info.mutual_info_classif",
        "sklearn.feature_selection._mutual_info.mutual_info_regression",
        "sklearn.cluster._kmeans._kmeans_single_lloyd",
        "sklearn.cluster._kmeans._kmeans_single_elkan",
    }
)
