"""Tables, figures, report pages, the methods record and the live display: pandas, matplotlib and rich
only (no TensorFlow, no MLflow), so reports and displays never wait for a framework import."""
