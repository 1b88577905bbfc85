# Deliberately misconfigured Cloud Functions deployment. Do not apply.
resource "google_cloudfunctions_function" "embed" {
  name                  = "embed"
  runtime               = "python38"
  entry_point           = "embed"
  trigger_http          = true
  available_memory_mb   = 2048
  timeout               = 540
  source_archive_bucket = "artifacts"
  source_archive_object = "embed.zip"
  # no service_account_email: runs as the default compute service account (project Editor)
  environment_variables = {
    ANTHROPIC_API_KEY = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"
  }
}

resource "google_cloudfunctions_function_iam_member" "public" {
  project        = google_cloudfunctions_function.embed.project
  region         = google_cloudfunctions_function.embed.region
  cloud_function = google_cloudfunctions_function.embed.name
  role           = "roles/cloudfunctions.invoker"
  member         = "allUsers"
}
