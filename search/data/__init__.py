"""Data: named sets loaded as arrays (`sources`), split, prepared and fed to training (`split`).

MNIST and Fashion-MNIST are read offline (a `dataset.path` of IDX files, Keras' cache, Debian's package);
their official test part is the test set; other data sets hold out `test_split` of their images.

TensorFlow is imported only inside the functions that need it (resizing, pipelines), so `plan` and the
spec layer can ask about a data set's shape without it.
"""

from search.data.memory import DataMemory, available_memory, check_preparation, data_memory
from search.data.sources import ArrayInfo, describe_arrays, describe_input, load_arrays, load_test_arrays
from search.data.split import LEAK_REMEDY, Data, Split, leak, load_data, pipeline, planned_split

__all__ = [
    "LEAK_REMEDY", "ArrayInfo", "Data", "DataMemory", "available_memory", "check_preparation", "data_memory", "describe_arrays",
    "describe_input", "leak", "load_arrays", "load_data", "load_test_arrays", "pipeline", "planned_split", "Split",
]
