"""The appliance: the command line today; the daemon, store, web app and fleet agent as they arrive."""
