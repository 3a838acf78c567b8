"""The shell: the `probe` command line and the demo. They compose the library, the trainers, the
analyses and the reports; nothing else imports this package."""
