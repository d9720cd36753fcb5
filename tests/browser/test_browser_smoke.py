"""Smoke test of the browser-test setup: a real chromium logs into the admin served by a live server."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_admin_index_in_a_real_browser(
    page, admin_login, live_server, transactional_db, django_user_model, screenshot_dir
):
    # The ORM in the test body, with Playwright's loop running in this thread (page is already open).
    user = django_user_model.objects.create_superuser("browser-admin", "browser-admin@example.com", "browser-pass-1")
    assert user.last_login is None

    admin_login("browser-admin", "browser-pass-1")
    page.goto(f"{live_server.url}/admin/")
    assert "Zoho Billing sync" in page.title()

    screenshot = screenshot_dir / "admin-index.png"
    screenshot.unlink(missing_ok=True)
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.is_file() and screenshot.stat().st_size > len(PNG_SIGNATURE)
    assert screenshot.read_bytes()[: len(PNG_SIGNATURE)] == PNG_SIGNATURE

    # The login went through the live server (another thread, its own connection) and the test sees its write.
    user.refresh_from_db()
    assert user.last_login is not None
