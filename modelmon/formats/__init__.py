"""SLO files in other tools' formats, read into modelmon's own spec: Sloth's Kubernetes
resources (PrometheusServiceLevel, AlertWindows) and OpenSLO."""
