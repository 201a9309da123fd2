"""The verification portal: web pages served by the service (``prosima.service.routes.portal``).

Plain server-rendered HTML and one stylesheet: an upload form that answers a verdict page works
with JavaScript off; a small script of the service's own only adds drag and drop. Every value is
escaped by the templates, no page carries a token or key that is not public, and every answer has
a Content-Security-Policy that lets the page load nothing but the service's own files."""
