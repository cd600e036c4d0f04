"""The MLflow store: the tag vocabulary (`tags`), where the store is (`locations`), the writer and
client reader (`client`, the only module that imports mlflow), the fast sqlite reader (`reader`) and
the provenance of a run (`provenance`), the store's check (`store`) and the MLflow UI's server (`ui_server`). Importing this package imports none of them.
"""
