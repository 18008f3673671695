"""Vendor bodies are read in time proportional to their size (issue 12, item 6): the HTML summary,
the first line of text and XML parsing, on the bodies a hostile vendor sends. bench/bodies.py
prints the full table; these tests hold the line in CI."""

from __future__ import annotations

import time

import pytest

from connections.providers.base import Provider
from connections.providers.http import MAX_XML_ELEMENTS, Reply, first_line, html_summary, parse_body

MB = 1024 * 1024


def seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def vendor_error(content_type: str, body: bytes) -> str:
    text = body.decode("utf-8", "replace")
    data, parse_error = parse_body(content_type, body, text)
    return Provider().parse_error(Reply(status=400, headers={}, content_type=content_type, body=body, text=text,
                                        data=data, parse_error=parse_error)).message


class TestHtmlSummary:
    @pytest.mark.parametrize("body, summary", [
        (b"<html><head><TITLE>502  Bad Gateway</TITLE></head><body><h1>nginx</h1>", "502 Bad Gateway"),
        (b"<h1 class='big'>Service <b>Unavailable</b> &amp; more</h1>", "Service Unavailable & more"),
        (b"<title></title><h1>Maintenance</h1>", "Maintenance"),
        (b"<titles>no</titles><h1>yes</h1>", "yes"),
        (b"<title>never closed", ""),
        (b"plain words", ""),
    ])
    def test_what_the_operator_reads(self, body, summary):
        assert html_summary(body) == summary

    @pytest.mark.parametrize("unit, prefix", [(b"<h1>", b""), (b"<title>", b""), (b"<", b"<title>"),
                                              (b"<b", b"<title>"), (b"a", b"<h1 ")])
    def test_pathological_pages_cost_their_length(self, unit, prefix):
        """<h1> x 16,384 took 12 s with the lazy regexes; now a 1 MB page takes milliseconds."""
        body = prefix + unit * (MB // len(unit))
        assert seconds(lambda: vendor_error("text/html", body)) < 0.5


class TestTextAndXml:
    def test_a_megabyte_line_of_text(self):
        body = b"word " * (MB // 5)
        message = vendor_error("text/plain", body)
        assert message == " ".join(["word"] * 61)[:300] and seconds(lambda: first_line(body.decode())) < 0.1

    def test_deep_xml_stops_early(self):
        body = b"<a>" * (MB // 3)
        assert seconds(lambda: parse_body("application/xml", body, "")) < 0.2
        assert parse_body("application/xml", body, "") == (None, "malformed XML (nested more than 64 levels deep)")

    def test_xml_with_too_many_elements_is_refused(self):
        body = b"<r>" + b"<a/>" * (MAX_XML_ELEMENTS + 1) + b"</r>"
        data, problem = parse_body("application/xml", body, "")
        assert data is None and problem == f"malformed XML (more than {MAX_XML_ELEMENTS:,} elements)"

    def test_ordinary_xml_still_parses(self):
        body = b"<?xml version='1.0'?><Result><Item>1</Item><Item>2</Item><Name>x</Name></Result>"
        assert parse_body("application/xml", body, "") == ({"Item": ["1", "2"], "Name": "x"}, "")
        assert parse_body("application/xml", b"<r><a>", "")[1].startswith("malformed XML (no element found")
