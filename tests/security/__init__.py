"""The security sweep: authorization matrix, response shapes, fuzzing, secrets in logs."""
