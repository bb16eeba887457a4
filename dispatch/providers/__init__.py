"""Providers that take messages: Kannel (SMS over its HTTP ``sendsms``), SMTP (e-mail), an HTTP
webhook (push, RCS), and a JSON-lines file (the embedded default). ``registry`` builds the ones the
environment configures; ``base`` says what a provider promises."""
