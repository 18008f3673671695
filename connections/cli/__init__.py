"""The `connections` CLI: one module per verb, each with add_arguments(parser) and
run(options, stdin, stdout, stderr) -> exit code (DESIGN.md: 0 ok, 1 the vendor said no,
2 bad input, 3 needs attention)."""

OK, VENDOR_SAID_NO, BAD_INPUT, NEEDS_ATTENTION = 0, 1, 2, 3
