"""The ground floor: names, ports, labels, metric names and Kubernetes quantities that every
layer above shares with the model server and the policy pack. Imports nothing of the library."""
