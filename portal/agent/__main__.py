from portal.agent.cli import main

raise SystemExit(main())
