from cliptag_cli.main import main

raise SystemExit(main())
