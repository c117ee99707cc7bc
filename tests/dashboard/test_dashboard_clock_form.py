"""The header's clock form in a real browser: Enter in the duration field moves the clock by what was
typed, a preset button by its own step."""


def test_enter_in_the_duration_field_moves_the_clock_by_the_typed_duration(server, page, shots):
    page.goto(server.url + "/_sandbox/")
    page.fill("#clock-form input[name=duration]", "P2D")
    page.press("#clock-form input[name=duration]", "Enter")
    page.wait_for_load_state()
    shots(page, "after-enter")
    assert "clock moved by P2D" in page.locator(".notice").inner_text()
    assert page.locator("#clock").inner_text() == "2026-01-03T00:00:00.000Z"

    # a preset still moves by its own step, whatever the field holds
    page.fill("#clock-form input[name=duration]", "P5D")
    page.click("#clock-form button[value=PT1H]")
    page.wait_for_load_state()
    assert "clock moved by PT1H" in page.locator(".notice").inner_text()
    assert page.locator("#clock").inner_text() == "2026-01-03T01:00:00.000Z"

    page.fill("#clock-form input[name=duration]", "PT30M")
    page.click("#advance-typed")
    page.wait_for_load_state()
    assert page.locator("#clock").inner_text() == "2026-01-03T01:30:00.000Z"
