package storage

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	gcaws "gocloud.dev/aws"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/s3blob"
	"google.golang.org/api/option"
)

// openS3 builds the S3 client itself (rather than through s3blob's URL
// opener) so that Options.AWS can replace the credential chain; the URL
// parameters are the same as s3blob's.
func openS3(ctx context.Context, u *url.URL, opts Options) (*blob.Bucket, *s3Bucket, beforeWriteFunc, error) {
	q := u.Query()
	s3opts := []func(*s3.Options){func(o *s3.Options) {
		// Objects uploaded in parts carry a composite checksum the SDK
		// cannot check on download; it would log a warning per Get.
		o.DisableLogOutputChecksumValidationSkipped = true
	}}
	var bopts s3blob.Options
	for _, p := range []string{"use_path_style", "s3ForcePathStyle", "disable_https", "accelerate"} {
		v := q.Get(p)
		if v == "" {
			continue
		}
		q.Del(p)
		on, err := strconv.ParseBool(v)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("parse URL parameter %s=%q: want true or false", p, v)
		}
		switch p {
		case "use_path_style", "s3ForcePathStyle":
			s3opts = append(s3opts, func(o *s3.Options) { o.UsePathStyle = on })
		case "disable_https":
			s3opts = append(s3opts, func(o *s3.Options) { o.EndpointOptions.DisableHTTPS = on })
		case "accelerate":
			s3opts = append(s3opts, func(o *s3.Options) { o.UseAccelerate = on })
		}
	}
	if v := q.Get("kmskeyid"); v != "" {
		q.Del("kmskeyid")
		bopts.KMSEncryptionID = v
	}
	if v := q.Get("ssetype"); v != "" {
		q.Del("ssetype")
		sse, err := sseType(v)
		if err != nil {
			return nil, nil, nil, err
		}
		bopts.EncryptionType = sse
	}
	cfg, err := gcaws.V2ConfigFromURLParams(ctx, q)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if c := opts.AWS; c != nil {
		cfg.Credentials = aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken))
	}
	if cfg.Region == "" {
		// The SDK refuses to sign without a region; S3-compatible servers
		// accept any, and AWS redirects to the right one.
		cfg.Region = "us-east-1"
	}
	bopts.RequestChecksumCalculation = cfg.RequestChecksumCalculation
	client := s3.NewFromConfig(cfg, s3opts...)
	b, err := s3blob.OpenBucket(ctx, client, u.Host, &bopts)
	if err != nil {
		return nil, nil, nil, err
	}
	return b, &s3Bucket{client: client, bucket: u.Host}, s3BeforeWrite(client, cfg.RequestChecksumCalculation), nil
}

// s3BeforeWrite lowers the transfer manager's multipart threshold to one
// part. s3blob leaves it at 16 MiB, and the manager reads that much into
// memory before deciding: with its part buffers that made a Put hold over
// 30 MiB. s3blob exposes the manager but not its options, so the hook
// replaces the manager's value with one built the same way.
func s3BeforeWrite(client *s3.Client, checksum aws.RequestChecksumCalculation) beforeWriteFunc {
	return func(as func(any) bool) error {
		var tm *transfermanager.Client
		if !as(&tm) || tm == nil {
			return nil
		}
		*tm = *transfermanager.New(client, func(o *transfermanager.Options) {
			o.RequestChecksumCalculation = checksum
			o.PartSizeBytes = partSize
			o.MultipartUploadThreshold = partSize
			o.Concurrency = partConcurrency
		})
		return nil
	}
}

// openGCS uses gocloud's URL opener (Application Default Credentials, or
// STORAGE_EMULATOR_HOST) unless Options name an emulator.
func openGCS(ctx context.Context, u *url.URL, opts Options) (*blob.Bucket, io.Closer, error) {
	host := opts.GCSEmulatorHost
	if host == "" {
		b, err := blob.OpenBucket(ctx, u.String())
		return b, nil, err
	}
	if u.RawQuery != "" {
		return nil, nil, fmt.Errorf("URL parameters are not supported with an explicit GCS emulator")
	}
	c, err := storage.NewClient(ctx,
		option.WithoutAuthentication(),
		option.WithEndpoint("http://"+host+"/storage/v1/"))
	if err != nil {
		return nil, nil, fmt.Errorf("create GCS client: %w", err)
	}
	b, err := gcsblob.OpenBucket(ctx, nil, u.Host, &gcsblob.Options{Client: c})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return b, c, nil
}

// openAzure uses gocloud's URL opener (AZURE_STORAGE_* variables or the
// default Azure credential) unless Options carry a shared key.
func openAzure(ctx context.Context, u *url.URL, opts Options) (*blob.Bucket, error) {
	k := opts.Azure
	if k == nil {
		return blob.OpenBucket(ctx, u.String())
	}
	so := azureblob.ServiceURLOptions{AccountName: k.Account}
	cred, err := azblob.NewSharedKeyCredential(k.Account, k.Key)
	if err != nil {
		return nil, fmt.Errorf("read Azure shared key: %w", err)
	}
	opener := &azureblob.URLOpener{
		ServiceURLOptions: so,
		MakeClient: func(svc azureblob.ServiceURL, name azureblob.ContainerName) (*container.Client, error) {
			cu, err := url.JoinPath(string(svc), string(name))
			if err != nil {
				return nil, err
			}
			return container.NewClientWithSharedKeyCredential(cu, cred, nil)
		},
	}
	return opener.OpenBucketURL(ctx, u)
}

// secrets lists the values in o that must never be printed.
func (o Options) secrets() []string {
	var out []string
	if o.AWS != nil {
		out = append(out, o.AWS.SecretAccessKey, o.AWS.SessionToken)
	}
	if o.Azure != nil {
		out = append(out, o.Azure.Key)
	}
	return out
}

// envSecrets lists the secret values the cloud SDKs read from the
// environment, so that an SDK error quoting one is scrubbed.
func envSecrets() []string {
	var out []string
	for _, v := range []string{"AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AZURE_STORAGE_KEY",
		"AZURE_STORAGE_SAS_TOKEN", "AZURE_CLIENT_SECRET"} {
		if s := os.Getenv(v); s != "" {
			out = append(out, s)
		}
	}
	for _, v := range []string{"AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGEBLOB_CONNECTIONSTRING"} {
		for part := range strings.SplitSeq(os.Getenv(v), ";") {
			k, val, _ := strings.Cut(part, "=")
			if strings.EqualFold(k, "AccountKey") || strings.EqualFold(k, "SharedAccessSignature") {
				out = append(out, val)
			}
		}
	}
	return out
}

// sseType reads the ssetype URL parameter as s3blob does.
func sseType(v string) (s3types.ServerSideEncryption, error) {
	for _, t := range s3types.ServerSideEncryptionAes256.Values() {
		if strings.EqualFold(string(t), v) {
			return t, nil
		}
	}
	return "", fmt.Errorf("parse URL parameter ssetype=%q: want one of %v", v, s3types.ServerSideEncryptionAes256.Values())
}
