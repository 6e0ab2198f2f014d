"""Device identity, claim codes, enrolment, Wi-Fi and first-boot configuration. Arrives with its issue."""
