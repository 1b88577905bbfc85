resource "google_service_account" "embed" {
  account_id   = "embed-fn"
  display_name = "embedding function"
}

resource "google_secret_manager_secret_iam_member" "api_key" {
  secret_id = "anthropic-api-key"
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.embed.email}"
}

resource "google_cloudfunctions2_function" "embed" {
  name     = "embed"
  location = "europe-west1"

  build_config {
    runtime     = "python312"
    entry_point = "embed"
  }

  service_config {
    max_instance_count    = 10
    available_memory      = "1024M"
    timeout_seconds       = 30
    ingress_settings      = "ALLOW_INTERNAL_AND_GCLB"
    service_account_email = google_service_account.embed.email
    secret_environment_variables {
      key     = "ANTHROPIC_API_KEY"
      secret  = "anthropic-api-key"
      version = "latest"
    }
  }
}

resource "google_cloudfunctions2_function_iam_member" "frontend" {
  cloud_function = google_cloudfunctions2_function.embed.name
  role           = "roles/cloudfunctions.invoker"
  member         = "serviceAccount:frontend@example-project.iam.gserviceaccount.com"
}
