"""From many predictions to one: feature fusion, the weighted ensemble, the pseudo-label shards, the final blend
weight and the submission."""
