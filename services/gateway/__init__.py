"""The HTTP/JSON gateway for partners: generic transcoding by `google.api.http`
annotations, with an OpenAPI 3 document generated from the same descriptors."""
