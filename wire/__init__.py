"""What two sides share, below every other package: canonical JSON, the one signing envelope, hash-chained
records, MQTT topics and payload limits, the fleet command gate, key text and box ids."""
