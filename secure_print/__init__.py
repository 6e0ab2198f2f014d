"""The sealed-job format: sealing, opening (verify pass, then stream pass), licenses, watermarks. Arrives with its issue."""
