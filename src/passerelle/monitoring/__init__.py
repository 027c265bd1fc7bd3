"""Production monitoring: reference profiles, drift, performance from feedback, canary analysis,
alerts and reports, all read from the serving domain's inference log and feedback."""
