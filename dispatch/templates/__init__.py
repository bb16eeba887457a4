"""Messages from templates: sandboxed rendering (``render``), SMS encoding and segments
(``encoding``), tracked short links (``links``), quick replies (``replies``) and the RCS rich card
(``rich_card``)."""
