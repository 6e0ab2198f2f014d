"""The sealed-job format: sealing, opening (verify, then stream), licenses, watermarks. Arrives with its issue."""
