from django.contrib.admin.apps import AdminConfig


class PortalAdminConfig(AdminConfig):
    # The admin behind the portal's sign-in and its two-factor requirement.
    default_site = "portal.accounts.admin_site.PortalAdminSite"
